package git_test

import (
	"fmt"

	"github.com/alkdev/alknet/git"
)

func ExampleRequest_Encode() {
	req := git.Request{Service: git.UploadPack, Path: "/team/app.git", Host: "example.com", Extra: []string{"version=2"}}
	fmt.Printf("%q\n", req.Encode())
	// Output: "003egit-upload-pack /team/app.git\x00host=example.com\x00\x00version=2\x00"
}

func ExampleCleanName() {
	name, _ := git.CleanName("/team/app")
	fmt.Println(name, git.Resource(name))
	_, err := git.CleanName("/../etc.git")
	fmt.Println(err)
	// Output:
	// team/app.git git:repo/team/app
	// alknet/git: bad repository name
}
